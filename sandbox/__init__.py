"""An emulator of every outside service Entrega talks to, with fault injection."""
