"""Services compose pieces and talk over sockets and files, never by importing each other."""
