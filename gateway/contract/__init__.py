"""The gateway's contract: OpenAPI 3.1, the docs page and the MCP server (docs/contract.md)."""
