"""Node kinds that graphs wire together: supervisor, subagent, escalation, human review."""
