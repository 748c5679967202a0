// PLACEHOLDER (being written): U-Net.
