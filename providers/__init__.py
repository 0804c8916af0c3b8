"""Clients for the outside services Entrega acts through; failures map into providers.errors."""
