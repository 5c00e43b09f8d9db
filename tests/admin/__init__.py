"""The admin API: authentication and every admin resource."""
