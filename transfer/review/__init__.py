"""Reviewing the audit in a browser: the `review` command's page, server and decisions."""
