service "api" {
  hosts    = ["web1"]
  binary   = build.app
  work_dir = "D:\\data\\api"
}

service "worker" {
  hosts    = ["web1"]
  binary   = build.app
  mode     = "wrapped"
  work_dir = "data\\worker"
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

# ERROR: 4:14 work_dir needs wrapped mode
# ERROR: 11:14 Invalid working directory
