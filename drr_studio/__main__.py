from drr_studio._qt.app import main

raise SystemExit(main())
