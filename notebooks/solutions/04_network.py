"""Solutions of notebook 04's exercises (build_notebooks.py --solutions fills them in)."""
# %% [exercise]
# Exercise 4.1: cout·cin·k·k weights plus cout biases.
def conv_parameters(cin, cout, k):
    return cout * cin * k * k + cout


generator_total = sum(conv_parameters(cin, cout, k)
                      for name, cin, cout, k, s, d, activation in gen_conv_table(32))

# %% [exercise]
# Exercise 4.2: two stride-2 layers (pmconv2, pmconv4): 512 / 4 = 128. Scores at 64×64:
# L = 4096 positions, L × L = 16,777,216 entries per image.
attention_side_512 = 512 // 4
score_entries_512 = (512 // 8) ** 4
