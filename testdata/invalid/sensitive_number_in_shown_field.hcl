variable "pin" {
  type      = number
  sensitive = true
  default   = 2.5
}

service "api" {
  hosts  = ["web1"]
  binary = build.app
  rollout {
    canary = var.pin
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

# ERROR: 11:14 Invalid canary
