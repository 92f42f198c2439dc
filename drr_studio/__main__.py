from drr_studio.app import main

raise SystemExit(main())
