"""The one stream of order events: positions in commit order, live delivery, resume."""
