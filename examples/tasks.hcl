# Two scheduled tasks on one Windows host, Go programs built from source
# and run by the Task Scheduler: a nightly report, and a job every 15
# minutes (and when the machine starts). Each run's output goes to the
# task's log files and its exit code is the run's result.

variable "winrm_password" {
  type      = string
  sensitive = true
}

host "jobs1" {
  address = "jobs1.example.internal"

  winrm {
    user     = "deploy"
    password = var.winrm_password
  }
}

build "report" {
  package = "./services/report"
}

task "nightly-report" {
  hosts       = ["jobs1"]
  binary      = build.report
  version     = "1.0.0"
  description = "Writes the daily report."
  args        = ["-out", "C:\\ProgramData\\reports"]
  env         = { REPORT_KIND = "daily" }
  time_limit  = "1h"

  account {
    name = "NetworkService"
  }

  trigger {
    daily = "02:00"
  }

  retry {
    count    = 3
    interval = "10m"
  }
}

task "sync" {
  hosts       = ["jobs1"]
  binary      = build.report
  description = "Syncs the queue."
  env         = { REPORT_KIND = "sync" }
  if_running  = "ignore"
  time_limit  = "10m"

  trigger {
    every = "15m"
  }

  trigger {
    at_startup = true
  }
}
