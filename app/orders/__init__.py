"""Shop orders arriving through the signed webhook: paid, completed, refunded."""
