// interop tests: written next
