task "nightly" {
  hosts       = ["web1"]
  binary      = build.app
  if_running  = "sometimes"
  work_dir    = "jobs"
  account {
    name = "NT SERVICE\\nightly"
  }
  retry {
    count    = 0
    interval = "90s"
  }
}

task "sync" {
  hosts  = ["web1"]
  binary = build.app
}

service "sync" {
  hosts  = ["web1"]
  binary = build.app
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

# ERROR: 1:1 Missing trigger
# ERROR: 4:17 Invalid if_running
# ERROR: 5:17 Invalid working folder
# ERROR: 7:12 Invalid account name
# ERROR: 10:16 Invalid count
# ERROR: 11:16 Invalid retry interval
# ERROR: 15:1 Duplicate name
