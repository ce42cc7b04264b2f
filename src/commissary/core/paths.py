"""Where the API lives: one prefix for every versioned route."""

API_PREFIX = "/api/v1"
