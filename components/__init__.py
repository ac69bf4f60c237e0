"""The app's views: the page skeleton (layout), shared state and helpers, and one module per stage of the model
(listed in views.VIEWS). Figure builders are pure functions of numpy arrays; callbacks are thin glue."""
