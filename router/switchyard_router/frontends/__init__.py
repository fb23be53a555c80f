"""Client-facing API shapes other than chat completions, translated to and from the router's
internal chat request (OpenAI's chat completions wire format)."""
