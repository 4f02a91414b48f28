"""Tax facts the mapping stage's tax decision reads: EU VAT rates, VAT numbers, SIREN/SIRET, VIES."""
