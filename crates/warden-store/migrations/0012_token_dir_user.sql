-- A token may be bound to one directory user: it then acts as that user only (the `as` of
-- governance requests), and only on the governance routes. NULL: an operator's token, which
-- names the acting directory user per request.
ALTER TABLE api_tokens ADD COLUMN dir_user TEXT;
