"""The subcommands of ``inpainting``, one module each: its options (``add_parser``) and what it
does (``cmd_...``). ``inpainting/app/cli.py`` builds the parser from them and runs one.

    demo             demo.py
    inpaint          inpaint.py
    train            train.py
    evaluate         evaluate.py
    convert-release  convert_release.py
    average-weights  average_weights.py
    app              web_app.py

``common.py`` holds the ``--weights`` / ``--device`` options and the model they load.
"""
