# environment decides which variable file is read, before variables.
variable "env" {
  default = "production"
}

host "web9" {
  address     = "web9.example.internal"
  environment = var.env
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

# ERROR: 8:17 Environment must be a constant
