"""Engram over MCP: the hosted Mem0 MCP server's tools and OpenMemory's (`tools`), over the
embedded store or a server's REST API (`backends`); `engram mcp` runs them over stdio, and
`engram serve` mounts them at `/mcp` (`http`)."""
