from facturation_sandbox.cli import main

raise SystemExit(main())
