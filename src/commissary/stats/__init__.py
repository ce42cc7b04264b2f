"""The sales dashboard's figures: orders by status, revenue per day, top products, per
restaurant."""
