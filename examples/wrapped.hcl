# A plain console program, hosted as a Windows service by the gsd agent
# (as NSSM or WinSW would): output goes to rotated log files, crashes are
# restarted with backoff, and stop is graceful with a timeout.

variable "winrm_password" {
  type      = string
  sensitive = true
}

host "worker1" {
  address = "worker1.example.internal"

  winrm {
    user     = "deploy"
    auth     = "ntlm"
    password = var.winrm_password
  }
}

build "ticker" {
  package = "./services/ticker"
}

service "ticker" {
  hosts        = ["worker1"]
  binary       = build.ticker
  mode         = "wrapped"
  display_name = "Ticker Worker"
  args         = ["-interval", "1s"]
  start        = "delayed"
  stop_timeout = "10s"

  account {
    name = "NT SERVICE\\ticker"
  }

  env = {
    TICKER_PREFIX = "tick"
  }

  log {
    max_size = "1MB"
    keep     = 3
  }

  health {
    running = true
    timeout = "20s"
  }
}
