"""mint_teach."""
