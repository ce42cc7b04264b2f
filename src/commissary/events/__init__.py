"""The order event stream: positions in commit order, and the hooks that consume it."""
