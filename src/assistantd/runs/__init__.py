"""What happens to a run after the request that created it returns."""
