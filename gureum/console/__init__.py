"""The web console: server-rendered pages at <endpoint>/console, mounted in the API server.

Every change a page makes is an API action called through `Api.call` as the signed-in
account (see actions.py), so validation, visibility and error codes are boto3's.
"""

from gureum.console.app import Console

__all__ = ["Console"]
