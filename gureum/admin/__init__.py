"""Operator views and actions over the whole cloud (every account): what `gureum
account list|delete` and `gureum host usage` run. Reads go to the store; changes go
through the API as the account concerned, so they obey the same handlers."""
