variable "svc_pw" {
  type      = string
  sensitive = true
  default   = ""
}

service "api" {
  hosts  = ["web1"]
  binary = build.app
  account {
    name     = "CORP\\svc-api"
    password = var.svc_pw
  }
}
host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
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

# ERROR: 12:16 Empty account password
