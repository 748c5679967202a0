// PLACEHOLDER (being written): training data.
