"""ASGI middleware that refuses hostile requests before routing: text in the URL, body size.

Each is pure ASGI (not ``BaseHTTPMiddleware``), so streaming responses (SSE) pass through
unbuffered, and each answers its refusal as ``application/problem+json`` itself.
"""
