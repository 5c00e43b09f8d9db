"""Money in and out: the price book, invoices, top-ups, Stripe checkout and webhooks, and
cap alerts."""
