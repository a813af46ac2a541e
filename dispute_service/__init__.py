"""The application core: settings, database, the one-transaction use cases, the audit chain and the CLI."""
