"""What an operator sees and does: the admin API, its commands, status and replay."""
