# Hosts declare environments, and plan must be told which one.
host "web9" {
  address     = "web9.example.internal"
  environment = "staging"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

service "api" {
  hosts  = ["web1"]
  binary = build.app
}


variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  vars    = { port = 8081, token = var.pw }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 4:17 No environment chosen
