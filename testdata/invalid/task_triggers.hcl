task "nightly" {
  hosts  = ["web1"]
  binary = build.app
  trigger {
    daily  = "25:00"
  }
  trigger {
    weekly = "02:00"
  }
  trigger {
    every = "30s"
  }
  trigger {
    daily = "02:00"
    every = "1h"
  }
  trigger {
    daily = "02:00"
    days  = ["monday"]
  }
  trigger {
    weekly = "02:00"
    days   = ["funday"]
  }
  trigger {
    at_logon = false
  }
}

host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 5:14 Invalid time of day
# ERROR: 7:11 Missing required argument
# ERROR: 11:13 Invalid interval
# ERROR: 13:3 Invalid trigger
# ERROR: 19:13 days without weekly
# ERROR: 23:14 Invalid day
# ERROR: 26:16 Trigger that never fires
