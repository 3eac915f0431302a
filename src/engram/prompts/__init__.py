"""One module per LLM task: typed inputs, an output model that is also the JSON schema, a pure
`render()` and a `VERSION` that is logged with every call."""
