from demo.scripted_chat import main

if __name__ == "__main__":
    raise SystemExit(main())
