"""Gateway-to-gateway links."""
