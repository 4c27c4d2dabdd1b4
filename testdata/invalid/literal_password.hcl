host "web2" {
  address = "web2.example.internal"
  winrm {
    user     = "deploy"
    password = "hunter2"
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

# WARNING: 5:16 Password written as a literal
