"""The price book, invoices, top-ups, Stripe and cap alerts."""
