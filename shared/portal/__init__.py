"""The customer portal: a customer signs in with its own key and runs its account."""
