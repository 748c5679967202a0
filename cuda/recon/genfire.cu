// PLACEHOLDER (being written): GENFIRE iterations with cuFFT.
