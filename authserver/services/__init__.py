"""Application services: the use cases views and the CLI call (the admin console, accounts and
invitations, connected apps, registration, launches, policies). They compose store/, oauth/,
smart/ and keys; views stay thin around them. A public function that writes is one unit of
work (``@store.transaction()``)."""
