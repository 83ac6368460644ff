"""The manager: REST API, auth, state store, scheduler, and the agents' RPC endpoint."""
