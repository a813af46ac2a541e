"""Emails: templates, action links, the outbox dispatcher and the SMTP sender."""
