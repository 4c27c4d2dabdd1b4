service "api" {
  hosts  = ["web1"]
  binary = build.app
  file "shared.yaml" {
    path    = "C:\\app\\shared.yaml"
    content = "a"
  }
}

service "worker" {
  hosts  = ["web1"]
  binary = build.app
  file "config.yaml" {
    path    = "C:\\APP\\Shared.yaml"
    content = "b"
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

# ERROR: 10:1 File written by two services
