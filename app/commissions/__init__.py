"""Two-level commissions: versioned plans, computation on paid, maturation, reversal, fraud holds."""
